"""Who may do what: actors (operators and agents), sandbox modes, promotions, guard rails,
redaction of secrets, and the checks made at submit and again where jobs run.

Importing this package is cheap; modules that touch SQL import it inside functions
where the CLI's ``--help`` could reach them.
"""
