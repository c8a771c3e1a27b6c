//! event stage.
