"""Build hook: ship the manual pages of man/ inside the package, as ipmp/data/man/.

Everything else is in pyproject.toml.  The pages stay in man/ in the source
tree (the man-page tests and the README point there); ``build_py`` copies
them next to the systemd units, so that a wheel carries both as package data
(``ipmp.data.man_dir()``).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MAN = Path(__file__).resolve().parent / "man"


class BuildPyWithMan(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib, "ipmp", "data", "man")
        self.mkpath(str(target))
        for page in sorted(MAN.glob("*.[58]")):
            self.copy_file(str(page), str(target / page.name))


setup(cmdclass={"build_py": BuildPyWithMan})
