"""``python -m services.grid.app worker`` runs the grid service."""
from .main import rt

rt.main()
