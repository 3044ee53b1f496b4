"""LLM monitoring: descriptors of each OpenAI-compatible exchange (prompt and answer lengths,
tokens, finish reasons, time to first token, refusals, JSON validity, scripts, personal-data
hits, hashed n-grams) profiled, baselined and checked with the tabular machinery
(``analyzer.profile``, ``analyzer.checks``). ``analyzer.llm.section`` is the Section."""
