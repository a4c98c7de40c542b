"""Account pages under /accounts/ (CONTRACT §4)."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("signup/", views.signup, name="signup"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
]
