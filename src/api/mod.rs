//! The doors to the outside: the JSON shapes shared by REST and the command line.

pub mod json;
