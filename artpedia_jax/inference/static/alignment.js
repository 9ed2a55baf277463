// Hover, tap or focus a word of an aligned sentence: its best region is outlined on the
// painting of the figure the sentence belongs to, and the word's score is read out.
(function () {
  'use strict';

  function show(word) {
    var holder = word.closest('[data-figure]');
    var figure = holder && document.getElementById(holder.dataset.figure);
    if (!figure) return;
    var box = word.dataset.box.split(' ');
    var canvas = figure.querySelector('.canvas');
    canvas.querySelectorAll('rect.halo, rect.active-region').forEach(function (rect) {
      rect.setAttribute('x', box[0]);
      rect.setAttribute('y', box[1]);
      rect.setAttribute('width', box[2]);
      rect.setAttribute('height', box[3]);
    });
    canvas.classList.add('active');
    document.querySelectorAll('.w.active').forEach(function (other) {
      other.classList.remove('active');
    });
    word.classList.add('active');
    figure.querySelector('.readout').textContent =
        '\u201c' + word.textContent + '\u201d: best region outlined, score ' +
        word.dataset.score;
  }

  ['mouseover', 'focusin', 'click'].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var word = event.target.closest && event.target.closest('.w[data-box]');
      if (word) show(word);
    });
  });
})();
