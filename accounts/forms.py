"""Forms of the account pages. Sign-up only checks what a form can (both passwords typed alike);
the rules of registration live in accounts/services.py `user_register`, shared with the API."""

from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import UsernameField
from django.core.exceptions import ValidationError

from accounts import services


class SignupForm(forms.Form):
    """username, password1, password2; Django's password validators apply (in the service)."""

    username = UsernameField(
        max_length=150,
        help_text="150 characters or fewer: letters, digits and @/./+/-/_ only.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password confirmation",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Enter the same password as before, for verification.",
    )

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two password fields didn't match.")
        return cleaned

    def register(self):
        """The new user, or None with the service's refusals added to the form's fields."""
        try:
            return services.user_register(
                username=self.cleaned_data["username"], password=self.cleaned_data["password1"]
            )
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                self.add_error("password2" if field == "password" else field, messages)
            return None
