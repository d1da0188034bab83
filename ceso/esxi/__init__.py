"""The vSphere API route to an ESXi host (pyVmomi), behind ceso's own types.

Nothing outside this package imports pyVmomi, and no pyVmomi exception leaves
it: :mod:`ceso.backends.faults` translates them into :mod:`ceso.errors`.
"""
