"""What `bidao import` says, one module per language: zh_cn first, en second.

Each module has the same names: HEADERS (the column headers a file may use, per file kind),
VALUES (the words a cell may use for a level, role, language or yes/no), WORDS (how a rule's
parameters are named), MESSAGES (one text per rule, `string.Template` with the rule's
parameters) and the lines of the summary.
"""
