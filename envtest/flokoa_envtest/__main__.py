"""``python -m flokoa_envtest`` is the same as the ``flokoa-envtest`` command."""

from flokoa_envtest.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
