"""Stage 3, insights: a backend proposes insights from a transcript (an LLM, the
offline extractive ranking, a local model), and grounding keeps only what the
transcript says.
"""
