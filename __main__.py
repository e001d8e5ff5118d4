"""Pulumi program: validate the stack config, build the components, export the outputs."""

import pulumi

from stack.compose import build_stack, load_from_pulumi

for key, value in build_stack(load_from_pulumi()).items():
    pulumi.export(key, value)
