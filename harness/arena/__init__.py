"""The arena: head-to-head battles on open-ended prompts, judged by a model (or imported from human
votes), rated with the leaderboard's Bradley–Terry fit. See docs/arena.md.

Modules: `imports` (Chatbot Arena counts and FastChat battle logs -> an arena record), `prompt_sets`
(prompt-set files: prompts, turns, reference answers, judge prompts), `verdicts` (parsing a judge's
reply as its prompt defines), `judging` (judge requests in both orders, cached), `pairing` (which
pairs meet), `battles` (candidates answer, the judge judges, the arena record is written).
"""
