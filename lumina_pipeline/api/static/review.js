// Keys for the review page: pick the keeper (and more files to keep), record the decision, go on.
const review = document.getElementById("review");
const cards = [...review.querySelectorAll(".card")];
let chosen = Math.max(0, cards.findIndex((card) => card.classList.contains("keeper")));

function pick(index) {
  chosen = (index + cards.length) % cards.length;
  cards.forEach((card, i) => card.classList.toggle("keeper", i === chosen));
  cards[chosen].classList.remove("also");
  cards[chosen].focus();
}

function keepToo(index) {
  if (index !== chosen) cards[index].classList.toggle("also");
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const { detail } = await response.json();
    alert(`Not saved: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    // changed since shown: show it as it is now; gone (regrouped away): go on to the next
    if (response.status === 409) window.location.reload();
    if (response.status === 404) window.location.assign(review.dataset.nextUrl);
  }
  return response.ok;
}

async function decideAndGoOn(keepAll) {
  const members = cards.map((card) => Number(card.dataset.imageId)); // as shown: refused if a regrouping changed them
  const body = keepAll
    ? { reviewed: true, keep_all: true, members }
    : {
        reviewed: true,
        members,
        [review.dataset.keeperField]: Number(cards[chosen].dataset.imageId),
        keep: cards.filter((card) => card.classList.contains("also")).map((card) => Number(card.dataset.imageId)),
      };
  if (await post(review.dataset.decisionUrl, body)) window.location.assign(review.dataset.nextUrl);
}

// Bulk accept: the count first, then a confirmation, then one call.
review.querySelectorAll(".bulk button").forEach((button) => {
  button.addEventListener("click", async () => {
    const form = button.closest(".bulk");
    const query = button.dataset.query + (button.dataset.query.endsWith("=") ? form.min_confidence.value : "");
    const url = `${form.dataset.acceptUrl}?${query}`;
    const preview = await (await fetch(url)).json();
    const megabytes = (preview.size_bytes / 1048576).toFixed(1);
    const question = `Mark ${preview.groups} groups reviewed, each keeping its suggested keeper? ` +
      `${preview.files} files (${megabytes} MB) become removable.`;
    if (!preview.groups) alert(preview.detail ? `Not counted: ${JSON.stringify(preview.detail)}` : "No group to accept.");
    else if (confirm(question) && (await post(`${url}&seen=${preview.seen}`, {}))) {
      window.location.assign(review.dataset.nextUrl);
    }
  });
});

cards.forEach((card, i) => card.addEventListener("click", (event) => (event.shiftKey ? keepToo(i) : pick(i))));
// a video, or a Live Photo's clip, plays while the pointer is on its card
review.querySelectorAll("video.clip").forEach((clip) => {
  const card = clip.closest(".card");
  card.addEventListener("mouseenter", () => clip.play().catch(() => {}));
  card.addEventListener("mouseleave", () => clip.pause());
});
document.addEventListener("keydown", (event) => {
  // Ctrl+A selects, Alt+Left goes back: only plain keys (and Shift with a digit) are the page's
  if (event.target.tagName === "INPUT" || event.ctrlKey || event.altKey || event.metaKey) return;
  const digit = /^(Digit|Numpad)[1-9]$/.test(event.code) ? Number(event.code.slice(-1)) : 0;
  if (digit && digit <= cards.length) (event.shiftKey ? keepToo : pick)(digit - 1);
  else if (event.key === "ArrowRight") pick(chosen + 1);
  else if (event.key === "ArrowLeft") pick(chosen - 1);
  else if (event.key === "Enter") decideAndGoOn(false);
  else if (event.key === "a") decideAndGoOn(true);
  else if (event.key === "s") window.location.assign(review.dataset.nextUrl);
  else return;
  event.preventDefault();
});
pick(chosen);
