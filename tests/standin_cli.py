"""Run the real ``cofee`` command line with the test stand-in backbone installed.

``python tests/standin_cli.py train --model standin ...`` (also under torchrun)
behaves exactly like ``cofee train`` except that ``--model standin[:DIM[:DROPOUT]]``
builds :class:`standin_backbone.StandInTagger`. Test code, not library code.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import standin_backbone  # noqa: E402

from cofee_lib.cli import main  # noqa: E402

if __name__ == "__main__":
    standin_backbone.install()
    sys.exit(main(sys.argv[1:]))
