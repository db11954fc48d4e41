//! The field catalogue (protocols.md section 3): one pure derivation per field.
