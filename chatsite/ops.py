"""Operations endpoints: /healthz, /readyz and /metrics (CONTRACT §4). Placeholder, see issue 6."""

from django.http import HttpResponse, JsonResponse


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    return JsonResponse({"status": "ok"})


def metrics_view(request):
    return HttpResponse("", content_type="text/plain")
