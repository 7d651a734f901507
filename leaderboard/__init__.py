"""evalboard.leaderboard: aggregation of run results, Bradley–Terry ratings, and HTML rendering.

Modules: `runs` (cells and their status), `table` (score table), `battles` (per-item scores for
the ratings), `ratings` (Bradley–Terry fits), `charts` + `page` + `templates/` (the page), `build`
(`evalboard leaderboard build`). It reads stored results only and never runs a model: the nightly
planner that evaluates missing cells is `evalboard.engine.nightly`, the lm-eval importer
`evalboard.records.lm_eval_import`.

Kept import-light on purpose: submodules are imported where they are used, so importing this
package pulls in nothing heavy.
"""
