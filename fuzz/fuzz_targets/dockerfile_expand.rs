//! `hoist_dockerfile::expand::Lexer`: `process_word`, `process_words` and
//! `process_word_tracked` on arbitrary UTF-8 with a small environment, with both
//! escape characters. Must never panic or hang; the results must agree with each
//! other.
#![no_main]

use std::collections::BTreeMap;

use hoist_dockerfile::expand::Lexer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(word) = std::str::from_utf8(rest) else {
        return;
    };
    let escape = if selector & 1 == 0 { '\\' } else { '`' };
    let lexer = Lexer::new(escape);

    let mut env = BTreeMap::new();
    env.insert("A".to_owned(), "a".to_owned());
    env.insert("EMPTY".to_owned(), String::new());
    env.insert("SPACES".to_owned(), " x  y\tz ".to_owned());
    env.insert("QUOTES".to_owned(), "'\"`\\$".to_owned());
    env.insert("DOLLAR".to_owned(), "${A}$A".to_owned());
    env.insert("UNI".to_owned(), "é☃\u{feff}".to_owned());
    env.insert("_".to_owned(), "underscore".to_owned());
    env.insert("1".to_owned(), "one".to_owned());

    let word_result = lexer.process_word(word, &env);
    let words_result = lexer.process_words(word, &env);
    let tracked = lexer.process_word_tracked(word, &env);

    // The same word fails or succeeds the same way however it is asked for.
    match (&word_result, &tracked) {
        (Ok(a), Ok((b, _))) => assert_eq!(a, b, "process_word vs process_word_tracked"),
        (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind()),
        _ => panic!("process_word {word_result:?} vs tracked {tracked:?}"),
    }
    assert_eq!(
        word_result.is_ok(),
        words_result.is_ok(),
        "process_word {word_result:?} vs process_words {words_result:?}"
    );
    if let Err(e) = &word_result {
        // Error offsets point into the word (or just past its end).
        assert!(
            e.offset() <= word.chars().count(),
            "offset {} past the end of {word:?}",
            e.offset()
        );
        let _ = e.to_string();
    }
    if let Ok((_, used)) = &tracked {
        for name in used {
            assert!(
                !name.is_empty(),
                "empty variable name recorded for {word:?}"
            );
        }
    }
});
