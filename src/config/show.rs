//! `ringcast config`: the effective configuration as JSON (Centrifugo key names), secrets masked.

use super::AppConfig;

const MASK: &str = "***";

/// The effective configuration, pretty JSON, with every secret replaced by `***`.
pub fn effective_json(cfg: &AppConfig) -> String {
    let mut f = cfg.file.clone();
    for secret in [
        &mut f.client.token.hmac_secret_key,
        &mut f.client.token.hmac_previous_secret_key,
        &mut f.http_api.key,
    ] {
        if !secret.is_empty() {
            *secret = MASK.into();
        }
    }
    serde_json::to_string_pretty(&f).expect("config serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AppFlags;

    #[test]
    fn secrets_are_masked_and_the_output_reads_back() {
        let flags = AppFlags {
            token_hmac_secret: Some("very-secret".into()),
            raw_rooms: "on".into(),
            ..AppFlags::default()
        };
        let cfg = AppConfig::build(&flags).unwrap();
        let text = effective_json(&cfg);
        assert!(!text.contains("very-secret"));
        assert!(text.contains("\"hmac_secret_key\": \"***\""));
        assert!(crate::config::FileConfig::parse(&text, true).is_ok());
        assert!(!cfg.try_it_out && !cfg.allow_anonymous);
    }

    #[test]
    fn no_key_means_try_it_out() {
        let cfg = AppConfig::try_it_out();
        assert!(cfg.try_it_out && cfg.allow_anonymous);
        assert!(
            cfg.file
                .channel
                .without_namespace
                .allow_subscribe_for_anonymous
        );
    }
}
