"""Pure extraction code: text normalisation, places, spaCy components, mention rows.

Nothing here imports Prefect. spaCy factories live in `extractors.spacy_components`
and are registered through the `spacy_factories` entry point, so importing this
package stays cheap.
"""
