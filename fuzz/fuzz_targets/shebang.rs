//! A script's first line through interpreter selection.
#![no_main]

use job_core::interpreter::prepare;
use job_core::model::ScriptLanguage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|script: &str| {
    for language in ScriptLanguage::ALL {
        if let Ok(p) = prepare(language, script) {
            if matches!(
                language,
                ScriptLanguage::Shell | ScriptLanguage::Bash | ScriptLanguage::Python
            ) {
                assert!(!p.content.contains("\r\n"));
            }
        }
    }
});
