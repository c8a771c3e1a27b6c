//! flow stage.
