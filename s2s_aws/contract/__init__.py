"""The contract between the SDK and the algorithm container (see DESIGN.md "Layout")."""
