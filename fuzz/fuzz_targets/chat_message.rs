//! Chat's text handling: any text parses as a chat publication or is refused without a panic;
//! an accepted one's stored form parses back to the same thing; every mention found is a
//! name of 1–64 characters written after an `@` in the text; masking keeps the character
//! count and leaves no blocked word.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::chat::blocked::BlockedWords;
use ringcast::chat::{mentions, message};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for m in mentions::parse(text) {
        assert!(!m.is_empty() && m.len() <= 64, "{m:?}");
        assert!(text.contains(&format!("@{m}")), "{m:?} in {text:?}");
    }
    if let Ok(p) = message::parse(text, 100) {
        let stored = p.to_json();
        let again = message::parse(&stored, 100).expect("the stored form parses");
        assert_eq!(again, p);
    }
    let blocked = BlockedWords::parse("spam\nscam\ncafé").expect("list");
    let masked = blocked.mask(text);
    assert_eq!(masked.chars().count(), text.chars().count());
    assert!(!blocked.matches(&masked), "{masked:?}");
});
