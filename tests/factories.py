"""factory-boy factories for the domain models."""

import factory

from templates_registry.models import MessageTemplate, TemplateStatus
from tenants.models import SenderNumber, Tenant
from whatsapp import Provider


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())


class SenderNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SenderNumber

    tenant = factory.SubFactory(TenantFactory)
    provider = Provider.SANDBOX
    phone_number_id = factory.Sequence(lambda n: f"10{n:010d}")
    waba_id = factory.Sequence(lambda n: f"20{n:010d}")
    display_phone_number = "+15550001111"


class MessageTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageTemplate

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"order_update_{n}")
    language = "en_US"
    category = "UTILITY"
    status = TemplateStatus.APPROVED
    components = factory.LazyFunction(
        lambda: [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."},
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
        ]
    )
