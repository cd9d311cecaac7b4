//! Placeholder: structural validation against the base R4 StructureDefinitions.
