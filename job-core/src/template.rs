//! Script templating with minijinja (DESIGN §6). Filled by the templating work.
