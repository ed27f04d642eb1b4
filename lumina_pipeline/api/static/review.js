// Keys for the review page: pick the keeper, record the decision, go on.
const review = document.getElementById("review");
const cards = [...review.querySelectorAll(".card")];
let chosen = Math.max(0, cards.findIndex((card) => card.classList.contains("keeper")));

function pick(index) {
  chosen = (index + cards.length) % cards.length;
  cards.forEach((card, i) => card.classList.toggle("keeper", i === chosen));
  cards[chosen].focus();
}

async function keepAndGoOn() {
  const body = { reviewed: true, [review.dataset.keeperField]: Number(cards[chosen].dataset.imageId) };
  const response = await fetch(review.dataset.decisionUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    alert(`Not saved: ${(await response.json()).detail}`);
    return;
  }
  window.location.assign(review.dataset.nextUrl);
}

cards.forEach((card, i) => card.addEventListener("click", () => pick(i)));
// a video, or a Live Photo's clip, plays while the pointer is on its card
review.querySelectorAll("video.clip").forEach((clip) => {
  const card = clip.closest(".card");
  card.addEventListener("mouseenter", () => clip.play().catch(() => {}));
  card.addEventListener("mouseleave", () => clip.pause());
});
document.addEventListener("keydown", (event) => {
  if (event.key >= "1" && event.key <= "9" && Number(event.key) <= cards.length) pick(Number(event.key) - 1);
  else if (event.key === "ArrowRight") pick(chosen + 1);
  else if (event.key === "ArrowLeft") pick(chosen - 1);
  else if (event.key === "Enter") keepAndGoOn();
  else if (event.key === "s") window.location.assign(review.dataset.nextUrl);
  else return;
  event.preventDefault();
});
pick(chosen);
