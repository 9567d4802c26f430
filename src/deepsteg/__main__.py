"""``python -m deepsteg …`` (also what ``torchrun -m deepsteg train …`` runs)."""

from deepsteg.cli import main

main()
