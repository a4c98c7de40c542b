"""Every account action: one function each, used by the REST API, the pages and the admin.

Rule errors are Django `ValidationError`s keyed by field (`username`, `password`, `old_password`,
`new_password`), which forms show as they are and the API turns into 400 field errors.

Whenever a user's credentials end (password change or reset, deactivation, web logout), the
service raises the token epoch where all of them end, revokes refresh tokens, and announces it
with `rooms.realtime.events.user_credentials_ended`: the one place open connections are to be closed.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth import logout as django_logout
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest

from accounts.tokens import refresh_tokens_revoke_all

USERNAME_TAKEN = "This username is taken; choose another."


def _user_model():
    return get_user_model()


def username_taken(username: str) -> bool:
    """Usernames are unique ignoring case: "Alice" is taken once "alice" exists."""
    return _user_model().objects.filter(username__iexact=username).exists()


def user_register(*, username: str, password: str, email: str = ""):
    """Create an account: Django's username rules, unique ignoring case, password validators."""
    User = _user_model()
    field = User._meta.get_field("username")
    errors: dict[str, list[str]] = {}
    try:
        field.clean(username, None)
    except ValidationError as error:
        errors["username"] = list(error.messages)
    if "username" not in errors and username_taken(username):
        errors["username"] = [USERNAME_TAKEN]
    try:
        validate_password(password, user=User(username=username, email=email))
    except ValidationError as error:
        errors["password"] = list(error.messages)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, password=password, email=email)
    except IntegrityError:  # registered concurrently since the check above
        raise ValidationError({"username": [USERNAME_TAKEN]}) from None


def _end_credentials(user) -> None:
    """Inside the transaction that ends them: older tokens refused, refresh tokens revoked, sockets told."""
    from rooms.realtime import events

    User = _user_model()
    User.objects.filter(pk=user.pk).update(token_epoch=F("token_epoch") + 1)
    user.token_epoch = User.objects.values_list("token_epoch", flat=True).get(pk=user.pk)
    refresh_tokens_revoke_all(user=user)
    events.user_credentials_ended(user_id=user.pk)


def password_set(*, user, new_password: str | None) -> None:
    """Give `user` a new password (None: no usable password), ending every credential they had:
    tokens and tickets issued before are refused, web sessions end (Django checks the password
    hash of each session), open connections are to close."""
    with transaction.atomic():
        if new_password is None:
            user.set_unusable_password()
        else:
            user.set_password(new_password)
        user.save(update_fields=["password"])
        _end_credentials(user)


def password_change(*, user, old_password: str, new_password: str) -> None:
    """The user changes their own password: `old_password` must be right, `new_password` pass the
    validators. Then as password_set; the caller issues the user a fresh token pair."""
    if not user.check_password(old_password):
        raise ValidationError({"old_password": ["This is not your current password."]})
    try:
        validate_password(new_password, user=user)
    except ValidationError as error:
        raise ValidationError({"new_password": list(error.messages)}) from None
    password_set(user=user, new_password=new_password)


def user_deactivate(*, actor, user) -> None:
    """A superuser deactivates an account: it can no longer sign in, every token answers 401,
    web sessions end, open connections are to close; audited."""
    from rooms.exceptions import BadRequest, Forbidden
    from rooms.models import AuditLog

    if not actor.is_superuser:
        raise Forbidden("Only superusers may deactivate accounts.")
    if user.pk == actor.pk:
        raise BadRequest("You cannot deactivate yourself.")
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        _end_credentials(user)
        AuditLog.objects.create(actor=actor, action=AuditLog.Action.USER_DEACTIVATE, target_user=user)


def user_reactivate(*, actor, user) -> None:
    """A superuser lets a deactivated account sign in again (old tokens stay refused); audited."""
    from rooms.exceptions import Forbidden
    from rooms.models import AuditLog

    if not actor.is_superuser:
        raise Forbidden("Only superusers may reactivate accounts.")
    with transaction.atomic():
        user.is_active = True
        user.save(update_fields=["is_active"])
        AuditLog.objects.create(actor=actor, action=AuditLog.Action.USER_REACTIVATE, target_user=user)


def session_logout(request: HttpRequest) -> None:
    """Sign the web session out (Django deletes it) and announce that the connections it
    authenticated end; a signed-out request changes nothing."""
    from rooms.realtime import events

    user = getattr(request, "user", None)
    session_key = request.session.session_key
    django_logout(request)
    if user is not None and user.is_authenticated and session_key:
        events.user_credentials_ended(user_id=user.pk, session_key=session_key)
