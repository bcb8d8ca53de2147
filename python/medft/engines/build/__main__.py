"""``python3 -m medft.engines.build``: build (or locate) the CPU or GPU Caffe."""

import sys

from medft.engines.build.make import main

sys.exit(main())
