"""``python -m services.assessment.app worker`` runs the assessment worker."""
from .main import rt

rt.main()
