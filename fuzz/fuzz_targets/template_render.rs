//! A template and a parameter value through rendering for every language.
#![no_main]

use std::collections::BTreeMap;

use job_core::model::ScriptLanguage;
use job_core::template::{Params, render_script};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (source, value) = input;
    let Ok(params) = Params::plain(&BTreeMap::from([("v".to_owned(), value.to_owned())])) else {
        return;
    };
    for language in ScriptLanguage::ALL {
        let _ = render_script(language, source, &params);
        // A value printed by `{{ v }}` is always one quoted literal.
        if let Ok(out) = render_script(language, "{{ v }}", &params) {
            if language != ScriptLanguage::Bat {
                assert!(out.script().len() >= 2);
            }
        }
    }
});
