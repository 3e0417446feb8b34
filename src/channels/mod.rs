//! Channels: names, namespaces and who may do what in them. Pure decisions, no state: the
//! session asks, this answers with an error code when the answer is no.
//!
//! A name is `[$][namespace:]rest`. `$` (`channel.private_prefix`) marks a private channel
//! that needs a subscription token. `rest` may end in `#alice,bob` (`channel.user_boundary`,
//! `channel.user_separator`): a user-limited channel only those users may use, where the
//! namespace has `allow_user_limited_channels`. ringcast is stricter than Centrifugo here: a
//! name with the user boundary in a namespace that does not allow user-limited channels is
//! refused, so `#alice` never becomes an open channel by a configuration slip.

use std::collections::HashMap;

use regex::Regex;

use crate::client_protocol::ClientError;
use crate::config::NamespaceOptions;
use crate::config::file::ChannelSection;

struct Namespace {
    opts: NamespaceOptions,
    regex: Option<Regex>,
}

/// The channel rules of the configuration, compiled.
pub struct ChannelRules {
    max_length: usize,
    private_prefix: String,
    namespace_boundary: String,
    user_boundary: String,
    user_separator: String,
    without: Namespace,
    namespaces: HashMap<String, Namespace>,
}

impl std::fmt::Debug for ChannelRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRules")
            .field("namespaces", &self.namespaces.len())
            .finish()
    }
}

/// A channel name resolved against the rules.
#[derive(Debug)]
pub struct Channel<'r, 'n> {
    pub opts: &'r NamespaceOptions,
    pub private: bool,
    /// The users of a user-limited channel (`a,b` of `dm:#a,b`).
    pub users: Option<&'n str>,
}

fn compile(opts: &NamespaceOptions) -> Result<Namespace, String> {
    let regex = if opts.channel_regex.is_empty() {
        None
    } else {
        // Anchored: the whole rest of the name must match.
        Some(
            Regex::new(&format!("^(?:{})$", opts.channel_regex))
                .map_err(|e| format!("channel_regex of {:?}: {e}", opts.name))?,
        )
    };
    Ok(Namespace {
        opts: opts.clone(),
        regex,
    })
}

impl ChannelRules {
    pub fn new(c: &ChannelSection) -> Result<Self, String> {
        if !c.without_namespace.name.is_empty() {
            return Err("channel.without_namespace must not have a name".into());
        }
        let mut namespaces = HashMap::new();
        for ns in &c.namespaces {
            let ok = !ns.name.is_empty()
                && ns
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !ok {
                return Err(format!(
                    "namespace name {:?}: use 1+ characters of A-Z a-z 0-9 _ - .",
                    ns.name
                ));
            }
            if namespaces.insert(ns.name.clone(), compile(ns)?).is_some() {
                return Err(format!("namespace {:?} is defined twice", ns.name));
            }
        }
        Ok(Self {
            max_length: c.max_length,
            private_prefix: c.private_prefix.clone(),
            namespace_boundary: c.namespace_boundary.clone(),
            user_boundary: c.user_boundary.clone(),
            user_separator: c.user_separator.clone(),
            without: compile(&c.without_namespace)?,
            namespaces,
        })
    }

    /// Resolves a channel name: 107 if empty or too long or off its regex, 102 for an unknown
    /// namespace, 103 for a user-limited name where those are not allowed.
    pub fn resolve<'r, 'n>(&'r self, name: &'n str) -> Result<Channel<'r, 'n>, ClientError> {
        if name.is_empty() {
            return Err(ClientError::BAD_REQUEST.with_detail("empty channel name"));
        }
        if name.len() > self.max_length {
            return Err(ClientError::BAD_REQUEST.with_detail(format_args!(
                "channel name longer than {} bytes",
                self.max_length
            )));
        }
        let (private, body) = match name.strip_prefix(self.private_prefix.as_str()) {
            Some(rest) if !self.private_prefix.is_empty() => (true, rest),
            _ => (false, name),
        };
        let (ns, rest) = match body.split_once(self.namespace_boundary.as_str()) {
            Some((ns, rest)) if !self.namespace_boundary.is_empty() => {
                let ns = self.namespaces.get(ns).ok_or_else(|| {
                    ClientError::UNKNOWN_CHANNEL
                        .with_detail(format_args!("no namespace {ns:?} in the configuration"))
                })?;
                (ns, rest)
            }
            _ => (&self.without, body),
        };
        let users = match rest.rsplit_once(self.user_boundary.as_str()) {
            Some((_, users)) if !self.user_boundary.is_empty() => {
                if !ns.opts.allow_user_limited_channels {
                    return Err(ClientError::PERMISSION_DENIED
                        .with_detail("user-limited channels are not allowed in this namespace"));
                }
                Some(users)
            }
            _ => None,
        };
        if let Some(re) = &ns.regex
            && !re.is_match(rest)
        {
            return Err(ClientError::BAD_REQUEST
                .with_detail("channel name does not match the namespace's channel_regex"));
        }
        Ok(Channel {
            opts: &ns.opts,
            private,
            users,
        })
    }

    fn user_listed(&self, users: &str, user: &str) -> bool {
        !user.is_empty() && users.split(self.user_separator.as_str()).any(|u| u == user)
    }

    /// May `user` ("" = anonymous) subscribe without a subscription token?
    pub fn may_subscribe(&self, ch: &Channel<'_, '_>, user: &str) -> Result<(), ClientError> {
        if ch.private {
            return Err(ClientError::PERMISSION_DENIED
                .with_detail("a private channel needs a subscription token"));
        }
        if let Some(users) = ch.users {
            return if self.user_listed(users, user) {
                Ok(())
            } else {
                Err(ClientError::PERMISSION_DENIED
                    .with_detail("you are not a user of this channel"))
            };
        }
        let o = ch.opts;
        if o.allow_subscribe_for_client && (!user.is_empty() || o.allow_subscribe_for_anonymous) {
            Ok(())
        } else {
            Err(ClientError::PERMISSION_DENIED.with_detail("subscribe"))
        }
    }

    /// May `user` publish into the channel (`subscribed`: the connection is subscribed)?
    pub fn may_publish(
        &self,
        ch: &Channel<'_, '_>,
        user: &str,
        subscribed: bool,
    ) -> Result<(), ClientError> {
        if let Some(users) = ch.users
            && !self.user_listed(users, user)
        {
            return Err(
                ClientError::PERMISSION_DENIED.with_detail("you are not a user of this channel")
            );
        }
        let o = ch.opts;
        let who_ok = !user.is_empty() || o.allow_publish_for_anonymous;
        let allowed = who_ok
            && ((o.allow_publish_for_client && (!ch.private || subscribed))
                || (o.allow_publish_for_subscriber && subscribed));
        if allowed {
            Ok(())
        } else {
            Err(ClientError::PERMISSION_DENIED.with_detail("publish"))
        }
    }

    pub fn has_namespace(&self, name: &str) -> bool {
        self.namespaces.contains_key(name)
    }

    pub fn allows_user_limited(&self, namespace: &str) -> bool {
        self.namespaces
            .get(namespace)
            .is_some_and(|n| n.opts.allow_user_limited_channels)
    }

    /// The users of a user-limited channel name, split (`dm:#alice,bob` → alice, bob).
    pub fn limited_users<'n>(&self, users: &'n str) -> impl Iterator<Item = &'n str> {
        users.split(self.user_separator.as_str())
    }

    /// The direct-message channel of two users in `namespace`: `dm:#alice,bob` (names sorted,
    /// so both ends name it alike).
    pub fn dm_channel(&self, namespace: &str, a: &str, b: &str) -> String {
        let (x, y) = if a <= b { (a, b) } else { (b, a) };
        format!(
            "{namespace}{}{}{x}{}{y}",
            self.namespace_boundary, self.user_boundary, self.user_separator
        )
    }

    /// The personal channel of `user` in `namespace` (`personal:#alice`).
    pub fn personal_channel(&self, namespace: &str, user: &str) -> String {
        if namespace.is_empty() {
            format!("{}{user}", self.user_boundary)
        } else {
            format!(
                "{namespace}{}{}{user}",
                self.namespace_boundary, self.user_boundary
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileConfig;

    fn rules(toml: &str) -> ChannelRules {
        ChannelRules::new(&FileConfig::parse(toml, false).unwrap().channel).unwrap()
    }

    const CFG: &str = r#"
[channel.without_namespace]
allow_subscribe_for_client = true
[[channel.namespaces]]
name = "chat"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
[[channel.namespaces]]
name = "news"
allow_subscribe_for_client = true
allow_subscribe_for_anonymous = true
channel_regex = "[a-z]+"
[[channel.namespaces]]
name = "dm"
allow_user_limited_channels = true
allow_publish_for_client = true
"#;

    #[test]
    fn names_resolve_to_namespaces() {
        let r = rules(CFG);
        assert_eq!(r.resolve("").unwrap_err().code, 107);
        assert_eq!(r.resolve(&"x".repeat(256)).unwrap_err().code, 107);
        assert!(r.resolve(&"x".repeat(255)).is_ok());
        assert_eq!(r.resolve("nope:x").unwrap_err().code, 102);
        assert_eq!(r.resolve("news:ABC").unwrap_err().code, 107);
        assert!(r.resolve("news:abc").is_ok());
        assert!(r.resolve("$chat:x").unwrap().private);
        assert_eq!(r.resolve("chat:#alice").unwrap_err().code, 103);
        assert_eq!(r.resolve("dm:#alice,bob").unwrap().users, Some("alice,bob"));
    }

    #[test]
    fn subscribe_permissions() {
        let r = rules(CFG);
        let ok = |ch: &str, user: &str| r.may_subscribe(&r.resolve(ch).unwrap(), user).is_ok();
        assert!(ok("plain", "alice"));
        assert!(
            !ok("plain", ""),
            "anonymous needs allow_subscribe_for_anonymous"
        );
        assert!(ok("news:x", ""));
        assert!(ok("dm:#alice,bob", "bob"));
        assert!(!ok("dm:#alice,bob", "carol"));
        assert!(!ok("dm:#alice,bob", ""));
        assert!(!ok("$chat:x", "alice"), "private needs a token");
    }

    #[test]
    fn publish_permissions() {
        let r = rules(CFG);
        let ok = |ch: &str, user: &str, sub: bool| {
            r.may_publish(&r.resolve(ch).unwrap(), user, sub).is_ok()
        };
        assert!(!ok("plain", "alice", true), "default deny");
        assert!(ok("chat:x", "alice", true));
        assert!(!ok("chat:x", "alice", false), "for subscribers only");
        assert!(ok("dm:#alice,bob", "alice", false));
        assert!(!ok("dm:#alice,bob", "mallory", false));
    }

    #[test]
    fn personal_channel_names() {
        let r = rules(CFG);
        assert_eq!(r.personal_channel("personal", "alice"), "personal:#alice");
        assert_eq!(r.personal_channel("", "alice"), "#alice");
    }
}
