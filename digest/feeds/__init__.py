"""Stage 1, feeds: parsing RSS/Atom (and repairing what podcast apps forgive), the
conditional fetch, OPML, podcast:chapters, the bundled sample show.
"""
