//! The doors to the outside: SOAP (MAGDA envelope), REST, and the JSON shapes shared by REST
//! and the command line.

pub mod json;
pub mod rest;
pub mod soap;
