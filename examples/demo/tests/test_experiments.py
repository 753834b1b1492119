"""The DemoSignup feature: control for everybody without Greenlight, the banner for the
enhanced branch, events recorded per user, and never a failed request because of experiments.

The shop's venv has no Greenlight, so the client here is a small stand-in with the same two
methods; the real client is exercised against a real store by Greenlight's own tests."""
import pytest

from app import experiments, server


class StandInClient:
    """Answers a fixed branch and keeps what it was asked, like ExperimentClient would."""

    store = None  # no store: the demo's buckets are not saved

    def __init__(self, url, branch="enhanced", **kwargs):
        self.url, self.branch, self.kwargs = url, branch, kwargs
        self.defined, self.asked, self.events = [], [], []
        self.attributes, self.properties = {}, []

    def define(self, experiment, by):
        self.defined.append((experiment, by))

    def branch_for(self, user, name, groups=(), attributes=None):
        self.asked.append((user, name, tuple(groups)))
        self.attributes[user] = attributes
        return self.branch

    def record_event(self, user, name, value=1.0, properties=None):
        self.events.append((user, name, value))
        self.properties.append(properties)


class StandInExperiment:
    def __init__(self, name, branches, description="", attributes=()):
        self.name, self.branches, self.description = name, branches, description
        self.attributes = attributes


class StandInBucket:
    def __init__(self, name, attributes, events):
        self.name, self.attributes, self.events = name, attributes, events


class StandInEventFilter:
    def __init__(self, name, where):
        self.name, self.where = name, where


class StandInStore:
    def __init__(self):
        self.saved = []

    def save_bucket(self, experiment, bucket, by):
        self.saved.append((experiment, bucket, by))


class StandInLibrary:
    ExperimentClient = StandInClient
    Experiment = StandInExperiment
    Bucket = StandInBucket
    EventFilter = StandInEventFilter


class Broken:
    def branch_for(self, *args, **kwargs):
        raise RuntimeError("store exploded")

    def record_event(self, *args, **kwargs):
        raise RuntimeError("queue exploded")


@pytest.fixture(autouse=True)
def no_client():
    experiments.use(None)
    yield
    experiments.use(None)


def test_without_a_store_everybody_gets_control_and_no_banner():
    assert experiments.start(environ={}) is None
    assert experiments.branch_for("alice") == "control"
    status, ctype, body = server.handle("/", {"user": "Alice"})
    assert status == 200 and ctype == "text/html"
    assert 'data-branch="control"' in body and "signup-banner" not in body


def test_store_named_but_greenlight_missing_means_control(monkeypatch):
    monkeypatch.setattr(experiments, "library", lambda: None)
    assert experiments.start(environ={experiments.ENV: "sqlite:///x.sqlite"}) is None
    assert experiments.branch_for("alice") == "control"


def test_start_defines_demo_signup_and_the_banner_follows_the_branch():
    client = experiments.start(environ={experiments.ENV: "sqlite:///x.sqlite"},
                               lib=StandInLibrary, registry="the-registry")
    assert client.url == "sqlite:///x.sqlite" and client.kwargs == {"registry": "the-registry"}
    ((experiment, by),) = client.defined
    assert (experiment.name, experiment.branches, by) == ("DemoSignup", {"enhanced": 0.5},
                                                          "demo-app")
    body = server.handle("/", {"user": " Alice "})[2]
    assert 'data-branch="enhanced"' in body and "free shipping" in body
    assert client.asked == [("alice", "DemoSignup", ())]
    assert 'data-branch="control"' not in body


def test_guests_are_not_asked_about():
    client = experiments.start(environ={experiments.ENV: "sqlite:///x.sqlite"},
                               lib=StandInLibrary)
    assert client.kwargs == {}
    assert 'data-branch="control"' in server.handle("/", {})[2]
    assert client.asked == []


def test_admins_and_qa_accounts_carry_their_group():
    assert experiments.groups_of("admin") == ("admin",)
    assert experiments.groups_of("qa-anna") == ("qa",)
    assert experiments.groups_of("bob") == ()


def test_registration_login_purchase_are_recorded_per_user():
    client = StandInClient("u")
    experiments.use(client)
    assert server.handle("/register", {"user": "Erin"})[0] == 201
    assert server.handle("/register", {"user": "erin"})[0] == 200  # not a new registration
    assert server.handle("/login", {"user": "ERIN"})[0] == 200
    assert server.handle("/purchase", {"user": "erin", "amount": "9.5"})[0] == 200
    assert client.events == [("erin", "registration", 1.0), ("erin", "login", 1.0),
                             ("erin", "purchase", 9.5)]
    assert client.asked == [("erin", "DemoSignup", ())] * 2  # each signup is an exposure


def test_the_signup_answer_follows_the_branch():
    assert server.handle("/register", {"user": "hal"})[2] == "registered\n"
    experiments.use(StandInClient("u"))
    assert "free shipping" in server.handle("/register", {"user": "ida"})[2]


def test_a_failing_client_never_fails_a_request():
    experiments.use(Broken())
    assert server.handle("/", {"user": "frank"})[0] == 200
    assert experiments.branch_for("frank") == "control"
    assert server.handle("/register", {"user": "frank"})[0] == 201
    experiments.record("frank", "login")  # swallowed


def test_a_client_that_cannot_start_leaves_control():
    class Refusing(StandInLibrary):
        class ExperimentClient:
            def __init__(self, url, **kwargs):
                raise OSError("no such database")

    assert experiments.start(environ={experiments.ENV: "postgresql://x/y"},
                             lib=Refusing) is None
    assert experiments.branch_for("gina") == "control"


def test_unknown_branch_renders_control():
    assert 'data-branch="control"' in server.home_page("x", "someday")
    assert server.experiment_user("") == ""


def test_make_server_binds_and_starts_without_a_store(monkeypatch):
    monkeypatch.delenv(experiments.ENV, raising=False)
    srv = server.make_server(["--host", "127.0.0.1", "--port", "0"])
    try:
        assert srv.server_address[1] > 0 and srv.daemon_threads
    finally:
        srv.server_close()


def test_library_is_greenlight_exactly_when_it_is_installed():
    try:
        import greenlight.experiments as installed
    except ImportError:
        installed = None
    assert experiments.library() is installed


def test_exposures_carry_attributes_and_logins_their_platform():
    client = experiments.start(environ={"GREENLIGHT_EXPERIMENTS_DB": "sqlite://"},
                               lib=StandInLibrary)
    assert client.defined[0][0].attributes == ("gender", "age_band", "platform")
    server.handle("/register", {"user": "Alice"})
    server.handle("/login", {"user": "Alice", "platform": "web"})
    server.handle("/login", {"user": "Alice"})
    user = client.asked[0][0]
    assert client.attributes[user] == experiments.attributes_of(user)
    assert set(client.attributes[user]) == {"gender", "age_band", "platform"}
    assert client.properties[-2:] == [{"platform": "web"},
                                      {"platform": experiments.usual_platform(user)}]


def test_a_client_with_a_store_saves_both_buckets():
    client = StandInClient("sqlite://")
    client.store = StandInStore()
    experiments.save_buckets(client, StandInLibrary)
    saved = {bucket.name: (experiment, bucket, by) for experiment, bucket, by in client.store.saved}
    assert set(saved) == {"logged_into_client", "women"}
    _, login, by = saved["logged_into_client"]
    assert by == "demo-app" and login.attributes == {}
    assert [(e.name, e.where) for e in login.events] == [("login", {"platform": "client"})]
    assert saved["women"][1].attributes == {"gender": ("f",)} and saved["women"][1].events == ()


def test_attributes_follow_the_weights_and_stay_put_per_user():
    users = [f"user{i}" for i in range(2000)]
    women = sum(experiments.attributes_of(u)["gender"] == "f" for u in users)
    assert 0.63 < women / len(users) < 0.75  # 69% asked for
    bands = {experiments.attributes_of(u)["age_band"] for u in users}
    assert bands == set(experiments.AGE_BANDS)
    assert experiments.attributes_of("Alice") == experiments.attributes_of("Alice")
