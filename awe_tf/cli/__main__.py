"""``python -m awe_tf.cli``: the ``awe-tf`` command."""

import sys

from awe_tf.cli import main

sys.exit(main())
