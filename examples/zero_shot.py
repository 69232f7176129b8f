#!/usr/bin/env python3
"""Zero-shot classification of one image with clip_cpp, written as open_clip code is: the model
and its preprocess, the tokenizer, then a softmax over the image-text logits.

    PYTHONPATH=build/python /usr/bin/python3 examples/zero_shot.py \\
        --model ViT-B-32/laion2b_s34b_b79k --image cat.jpg --labels "a cat,a dog,a car"
"""
import argparse

from PIL import Image
import torch

import clip_cpp


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model name (clip_cpp.list_pretrained()) or checkpoint path")
    parser.add_argument("--pretrained", default=None, help="open_clip pretrained tag, when --model is an architecture")
    parser.add_argument("--image", required=True)
    parser.add_argument("--labels", required=True, help="comma-separated")
    args = parser.parse_args()

    model, _, preprocess = clip_cpp.create_model_and_transforms(args.model, pretrained=args.pretrained)
    model.eval()
    tokenizer = clip_cpp.get_tokenizer(args.model)

    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    image = preprocess(Image.open(args.image)).unsqueeze(0)
    text = tokenizer(labels)

    with torch.no_grad():
        image_features = model.encode_image(image)
        text_features = model.encode_text(text)
        image_features /= image_features.norm(dim=-1, keepdim=True)
        text_features /= text_features.norm(dim=-1, keepdim=True)
        probs = (100.0 * image_features @ text_features.T).softmax(dim=-1)

    for label, p in sorted(zip(labels, probs[0].tolist()), key=lambda x: -x[1]):
        print(f"{p:7.2%}  {label}")


if __name__ == "__main__":
    main()
