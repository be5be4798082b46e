"""Fixed vocabularies the synthetic population draws from.

Kept apart from the generator so that the generator reads as the journey model and
this file as data: personas, firms, pages, assets, campaigns.
"""

from __future__ import annotations

from typing import NamedTuple


class Persona(NamedTuple):
    key: str
    titles: tuple[str, ...]
    fit: float  # how well this persona fits the ideal customer profile (-2 .. +1.5)
    weight: float  # share of the population


PERSONAS: tuple[Persona, ...] = (
    Persona("marketing_leader", ("VP Marketing", "CMO", "Head of Demand Generation"), 1.4, 8),
    Persona("marketing_ops", ("Marketing Operations Manager", "Marketing Ops Lead"), 1.2, 10),
    Persona("sales_leader", ("VP Sales", "Head of Sales", "Sales Director"), 0.9, 8),
    Persona("revops", ("Revenue Operations Manager", "RevOps Analyst"), 1.0, 7),
    Persona("marketer", ("Marketing Manager", "Content Marketer", "Growth Marketer"), 0.4, 18),
    Persona("engineer", ("Software Engineer", "Data Engineer", "IT Manager"), -0.2, 14),
    Persona("executive", ("CEO", "COO", "Founder"), 0.6, 7),
    Persona("finance", ("CFO", "Finance Manager", "Controller"), -0.1, 6),
    Persona("buyer", ("Purchasing Manager", "Wholesale Buyer", "Procurement Lead"), 0.3, 8),
    Persona("agent", ("Real Estate Agent", "Broker", "Property Manager"), 0.2, 6),
    Persona("student", ("Student", "Intern", "Graduate Student"), -2.0, 5),
    Persona("competitor", ("Product Manager", "Competitive Analyst"), -1.8, 3),
)

FIRST_NAMES = (
    "Ada",
    "Ben",
    "Chloe",
    "Diego",
    "Emma",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Amir",
    "Bea",
    "Carlos",
    "Dana",
)
LAST_NAMES = (
    "Andersen",
    "Brown",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Müller",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quist",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Virtanen",
    "Wang",
    "Xu",
    "Young",
    "Zhang",
    "Novak",
    "Silva",
    "Murphy",
    "Singh",
)
COMPANY_STEMS = (
    "Acme",
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Gringotts",
    "Oscorp",
    "Wonka",
    "Aperture",
    "Black Mesa",
    "Monarch",
    "Pied Piper",
    "Dunder",
    "Sterling",
    "Nakatomi",
)
COMPANY_SUFFIXES = (
    "Labs",
    "Systems",
    "Group",
    "Trading",
    "Analytics",
    "Realty",
    "Supply",
    "Software",
    "Partners",
    "Logistics",
    "Health",
    "Foods",
)
INDUSTRIES = (
    "COMPUTER_SOFTWARE",
    "INFORMATION_TECHNOLOGY_AND_SERVICES",
    "MARKETING_AND_ADVERTISING",
    "FINANCIAL_SERVICES",
    "WHOLESALE",
    "REAL_ESTATE",
    "HOSPITAL_HEALTH_CARE",
    "RETAIL",
    "EDUCATION_MANAGEMENT",
    "LOGISTICS_AND_SUPPLY_CHAIN",
)
# Industries the ideal customer profile favours, and by how much.
INDUSTRY_FIT = {
    "COMPUTER_SOFTWARE": 0.6,
    "INFORMATION_TECHNOLOGY_AND_SERVICES": 0.5,
    "MARKETING_AND_ADVERTISING": 0.4,
    "FINANCIAL_SERVICES": 0.3,
    "EDUCATION_MANAGEMENT": -0.5,
}
COUNTRIES = (
    "United States",
    "United Kingdom",
    "Germany",
    "France",
    "Canada",
    "Australia",
    "Netherlands",
    "Sweden",
    "India",
    "Brazil",
    "Japan",
    "Spain",
)
COUNTRY_WEIGHTS = (30, 12, 10, 7, 7, 5, 5, 4, 8, 5, 4, 3)
COUNTRY_FIT = {"United States": 0.3, "United Kingdom": 0.3, "Germany": 0.2, "Canada": 0.2}

# Pages a contact visits; index 0 is the pricing page, which intent drives up.
PAGES = (
    ("https://www.example.com/pricing", "Pricing"),
    ("https://www.example.com/product", "Product"),
    ("https://www.example.com/blog/lead-scoring-101", "Lead scoring 101"),
    ("https://www.example.com/blog/mql-vs-sql", "MQL vs SQL"),
    ("https://www.example.com/customers", "Customers"),
    ("https://www.example.com/integrations/salesforce", "Salesforce integration"),
    ("https://www.example.com/docs/getting-started", "Getting started"),
    ("https://www.example.com/careers", "Careers"),
)
ASSETS = (
    ("State of Marketing Ops 2026", "whitepaper"),
    ("Lead Scoring Playbook", "ebook"),
    ("ROI Calculator", "tool"),
    ("Customer Story: Northwind", "case_study"),
)
WEBINARS = (
    "Webinar: Scoring that sales trusts",
    "Webinar: From MQL to revenue",
    "Webinar: Intent data in practice",
)
EMAILS = (
    ("Monthly newsletter", "Newsletter"),
    ("Your guide to pricing", "Pricing nurture"),
    ("Invitation: scoring webinar", "Webinar invite"),
)
FORMS = ("contact-us", "catalog-request")
MEETING_TITLES = ("Intro call", "Discovery call", "Product demo")
SOCIAL = ("LinkedIn comment", "Post share")
COMPLAINTS = ("Billing question", "Bug report")

# Campaigns as Salesforce sees them: (name, type). Webinars first, then email, content.
CAMPAIGNS: tuple[tuple[str, str], ...] = (
    tuple((w, "Webinar") for w in WEBINARS)
    + tuple((name, "Email") for _, name in EMAILS)
    + tuple((a, "Content") for a, _ in ASSETS)
)
