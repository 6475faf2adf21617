"""``python -m flokoa_controller`` is the same as the ``flokoa-controller`` command."""

from flokoa_controller.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
