//! Placeholder: replaced by the generated R4 element table (tools/gen_fhir_tables.py).
