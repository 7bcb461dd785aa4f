"""``python -m services.party.app worker`` runs the party service worker."""
from .main import rt

rt.main()
