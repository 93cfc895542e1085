"""Planning answers: the least-cost mix of levers that meets the targets under uncertainty
(`eldercare optimise`: `spec`, `search`, `output`) and where to put new centres (`eldercare site`:
`siting`). See docs/PLANNING.md."""
