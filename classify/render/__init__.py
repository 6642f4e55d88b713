"""Rendering reports: one document model written as Markdown and as self-contained HTML, and the plot style."""
