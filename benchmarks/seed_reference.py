"""The seed's V3 code, as the blog post writes it, kept only as the baseline that benchmarks measure against.

Model, data preparation, training step and generation loop follow "Generating Pixels One by One"
(../shared/seed/generating-pixels-one-by-one.md); comments and prints trimmed, logic unchanged.
"""
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class CategoricalPixelPredictor(nn.Module):
    def __init__(self, num_pixel_values, token_embedding_dim, context_length, hidden_size, img_size,
                 pos_embedding_dim, start_token_integer_value, num_classes, class_embedding_dim, dropout_rate=0.25):
        super().__init__()
        self.num_pixel_values = num_pixel_values
        self.img_size = img_size
        self.token_vocab_size = max(num_pixel_values - 1, start_token_integer_value) + 1
        self.token_embedding = nn.Embedding(self.token_vocab_size, token_embedding_dim)
        self.row_pos_embedding = nn.Embedding(img_size, pos_embedding_dim)
        self.col_pos_embedding = nn.Embedding(img_size, pos_embedding_dim)
        self.class_embedding = nn.Embedding(num_classes, class_embedding_dim)
        self.mlp_input_dim = context_length * token_embedding_dim + 2 * pos_embedding_dim + class_embedding_dim
        self.fc1 = nn.Linear(self.mlp_input_dim, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout_rate)
        self.fc_out = nn.Linear(hidden_size, self.num_pixel_values)

    def forward(self, x_context_tokens, pixel_positions_flat, class_labels, training=True):
        batch_size = x_context_tokens.shape[0]
        embedded_context = self.token_embedding(x_context_tokens)
        flattened_embedded_context = embedded_context.view(batch_size, -1)
        rows = pixel_positions_flat // self.img_size
        cols = pixel_positions_flat % self.img_size
        row_embeds = self.row_pos_embedding(rows)
        col_embeds = self.col_pos_embedding(cols)
        class_embeds = self.class_embedding(class_labels)
        combined_features = torch.cat([flattened_embedded_context, row_embeds, col_embeds, class_embeds], dim=1)
        h = F.relu(self.fc1(combined_features))
        if training:
            h = self.dropout(h)
        h = F.relu(self.fc2(h))
        if training:
            h = self.dropout(h)
        return self.fc_out(h)


def seed_v3(k=16):
    return CategoricalPixelPredictor(k, 16, 28, 1024, 28, 32, k, 10, 16)


def create_training_data_v3(token_images, labels, context_length, start_token_int, max_samples, random_drop=0.8):
    """The seed's per-pixel Python loop that materialises (context, target, position, label) rows."""
    all_contexts, all_targets, all_positions, all_labels = [], [], [], []
    samples_collected = 0
    for i in range(len(token_images)):
        if samples_collected >= max_samples:
            break
        flat_token_image = token_images[i].view(-1)
        padded = torch.cat([torch.full((context_length,), start_token_int, dtype=torch.long), flat_token_image])
        for pixel_idx in range(flat_token_image.shape[0]):
            if samples_collected >= max_samples:
                break
            if random.random() > random_drop:
                all_contexts.append(padded[pixel_idx : pixel_idx + context_length])
                all_targets.append(flat_token_image[pixel_idx].unsqueeze(0))
                all_positions.append(torch.tensor([pixel_idx], dtype=torch.long))
                all_labels.append(torch.tensor([int(labels[i])], dtype=torch.long))
                samples_collected += 1
    contexts = torch.stack(all_contexts).long()
    targets, positions, labels_t = torch.cat(all_targets), torch.cat(all_positions), torch.cat(all_labels)
    order = torch.randperm(len(contexts))
    return contexts[order], targets[order], positions[order], labels_t[order]


def train_steps(model, data, steps, batch_size=512, lr=1e-3):
    """The seed's inner training loop (AdamW, CrossEntropyLoss, random index batches) for ``steps`` steps."""
    contexts, targets, positions, labels = data
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    model.train()
    indices = torch.randperm(len(contexts))
    for step in range(steps):
        batch = indices[(step * batch_size) % len(contexts):][:batch_size]
        optimizer.zero_grad()
        logits = model(contexts[batch], pixel_positions_flat=positions[batch], class_labels=labels[batch], training=True)
        loss = criterion(logits, targets[batch])
        loss.backward()
        optimizer.step()


def generate_image_v3(model, class_label, temperature=1.0, context_length=28, start_token_int=16, num_pixel_values=16):
    """The seed's one-image, one-pixel-at-a-time generator with its probability and entropy tracking."""
    model.eval()
    current_context_tokens = torch.full((1, context_length), start_token_int, dtype=torch.long)
    class_label_tensor = torch.tensor([class_label], dtype=torch.long)
    generated, chosen_probs, entropies = [], [], []
    with torch.no_grad():
        for i in range(784):
            position = torch.tensor([i], dtype=torch.long)
            output_logits = model(current_context_tokens, pixel_positions_flat=position, class_labels=class_label_tensor, training=False)
            probabilities = F.softmax(output_logits / temperature, dim=-1).squeeze()
            next_token = torch.multinomial(probabilities, 1).item()
            generated.append(next_token)
            chosen_probs.append(probabilities[next_token].item())
            entropies.append(-torch.sum(probabilities * torch.log(probabilities + 1e-9)).item())
            new_token = torch.tensor([[next_token]], dtype=torch.long)
            current_context_tokens = torch.cat([current_context_tokens[:, 1:], new_token], dim=1)
    image = ((torch.tensor(generated, dtype=torch.long).float() + 0.5) / num_pixel_values).numpy().reshape(28, 28)
    return image, np.array(chosen_probs).reshape(28, 28), np.array(entropies).reshape(28, 28)
