"""Forms of the account pages: sign-up is Django's UserCreationForm on the custom user model."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    """username, password1, password2; Django's password validators apply."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)
