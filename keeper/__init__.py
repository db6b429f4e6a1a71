"""The keeper: watches the registry and the selector every block and re-selects the committee
when a member becomes ineligible or a better committee is allowed (docs/self-healing.md)."""
