"""Reading dumps: formats, readers, cleaning, language, duplicate groups, corpus tables."""
