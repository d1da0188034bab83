"""The SSH route's session fixtures (a free-licensed simulator behind a real sshd), shared with tests/ssh."""

from tests.ssh.conftest import free_sim, shell, sshd

__all__ = ["free_sim", "shell", "sshd"]
