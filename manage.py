#!/usr/bin/env python
"""Django's command-line utility. The settings module is chosen by ``config`` (see its
docstring): ``DJANGO_SETTINGS_MODULE``, else ``.env``, else production."""

import sys

import config  # noqa: F401  (chooses the settings module, as for every other entry point)


def main() -> None:
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
