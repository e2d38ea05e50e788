//! Interpreter selection from script language and shebang. Filled by the templating work.
