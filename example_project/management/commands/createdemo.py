"""`manage.py createdemo`: an admin (admin/admin) and a user (alice/alice) to try it out."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo accounts admin/admin and alice/alice if they do not exist."

    def handle(self, *args, **options):
        users = get_user_model()._default_manager
        if not users.filter(username="admin").exists():
            users.create_superuser("admin", "admin@example.com", "admin")
        if not users.filter(username="alice").exists():
            users.create_user("alice", "alice@example.com", "alice")
        self.stdout.write("Demo accounts: admin/admin (staff), alice/alice")
